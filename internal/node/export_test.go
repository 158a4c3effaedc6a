package node

// SetReconcileChunks makes reconciliation scan at most scan entries and
// answer at most budget bytes of records per request, until restore.
func SetReconcileChunks(scan uint64, budget int) (restore func()) {
	oldScan, oldBudget := recordsScan, recordsBudget
	recordsScan, recordsBudget = scan, budget
	return func() { recordsScan, recordsBudget = oldScan, oldBudget }
}
