// Package node wires one party's Liaison node together: identity, store,
// policies and agreements, guard, audit log, federation links, API,
// console and gateways. It owns their lifetimes; domain packages never
// import it.
package node
