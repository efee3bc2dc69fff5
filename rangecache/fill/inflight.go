package fill

// InFlight reports the fills in progress and how many requests read them: the leaders and
// the requests that joined them (coalesced) and have not called Done yet. For status pages.
func (t *Table) InFlight() (fills, readers int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.fills {
		fills++
		readers += f.Holders()
	}
	return fills, readers
}
