"""``retrain docs``: a static site documenting the SQL project, and a run of it when one is given."""
