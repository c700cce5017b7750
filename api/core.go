package api

import "github.com/gorilla/mux"

func (s *Server) registerCoreRoutes(r *mux.Router) {}
