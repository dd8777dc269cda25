package server

// RoutesOf returns the server's API route table (tests walk it).
func RoutesOf(s *Server) []Route { return s.apiRoutes() }
