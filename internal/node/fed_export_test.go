package node

import "context"

// InboxAccept hands wire bytes to n's federation inbox as if they came
// from party from over an authenticated link.
func InboxAccept(ctx context.Context, n *Node, from string, wire []byte) error {
	return (&inbox{n: n}).AcceptBatch(ctx, from, [][]byte{wire})[0]
}
