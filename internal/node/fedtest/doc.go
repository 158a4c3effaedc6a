// Package fedtest runs real Liaison nodes on loopback for node-to-node
// tests: [MakeHome] writes a home (identity, demo policies, one token with
// every role), [Party.Open] opens and starts its node on a given clock,
// [ExchangeCards] pins partners' cards, [Deal] builds, co-signs and
// installs an agreement, and [NewCluster] does all of it for a set of
// parties on one simulated clock, the first dialling the others through
// a link simulator. Its own tests are the federation tests of issue 5.
package fedtest
