package identity

// Pending reports the hits waiting for the next batch.
func (r *RedisSessions) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Batches reports the script calls sent.
func (r *RedisSessions) Batches() uint64 {
	return r.batches.Load()
}

// MaxInFlight is how many round trips run at once.
const MaxInFlight = maxInFlight
