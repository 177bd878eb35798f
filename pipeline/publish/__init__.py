"""Ready to publish: the structure pre-flight, the book's metadata and cover, tags in every
tagged file, store packages (``delivery:``) and an independent checker of rendered files.

None of it imports Prefect; ``stage.publish_outputs`` is the one call the flow makes.
"""
