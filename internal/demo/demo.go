// Package demo tells the CIS-MOA story that 'liaison demo' shows: three
// real nodes (USA, PAK and IND) on loopback, each with its own home, a
// simulated clock, and narrated steps whose every claim is checked. It
// is the quick start's first command, so it must finish in under a minute
// on a 2-core machine and exit non-zero, naming the step, when anything
// did not behave as told.
package demo
