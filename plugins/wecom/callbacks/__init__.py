"""Contact-change callbacks: parse and store events, fold them per entity, apply them to the tables."""
