// Package fedtest holds the node-to-node federation tests: real nodes on
// loopback (in-process with a simulated clock, or as 'liaison up' child
// processes) exchanging cards, installing co-signed agreements and moving
// traffic through a link simulator. It has no API of its own.
package fedtest
