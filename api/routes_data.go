package api

import "github.com/gorilla/mux"

func (s *Server) registerDataRoutes(r *mux.Router) {}
