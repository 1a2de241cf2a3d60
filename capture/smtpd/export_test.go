package smtpd

// SetFastData turns the DATA fast path on or off before Serve.
func SetFastData(s *Server, on bool) { s.noFastData = !on }

// FastDataCount is how many bodies the fast path has taken.
func FastDataCount(s *Server) int64 { return s.fastData.Load() }
