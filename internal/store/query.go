package store

// Querier answers the analytics API's questions (overview, time series,
// breakdowns). Both implementations must give identical answers for the same
// events; the parity tests hold them to it.
type Querier interface{}
