"""Demo data: the synthetic generator, its clinical model, its JSON rendering and the COPY loader."""
