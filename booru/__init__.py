"""Booru search and download: Danbooru, Gelbooru (+ v0.2 clones), Moebooru, e621."""
