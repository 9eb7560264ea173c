"""The jinja2 templates of new objects and new elements (package data: reconciler.templates)."""
