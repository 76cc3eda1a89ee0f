"""Service plumbing shared by both services: app factory, middleware, error envelope, settings base."""
