package smtpd

// SetFastData turns the DATA fast path on or off for connections
// accepted from now on.
func SetFastData(s *Server, on bool) { s.noFastData.Store(!on) }

// FastDataCount is how many bodies the fast path has taken.
func FastDataCount(s *Server) int64 { return s.fastData.Load() }
