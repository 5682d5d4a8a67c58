"""Certificate authority and file formats: pure functions over bytes and `cryptography` objects.

This package is the only code that touches CA keys. It must never import Flask, Peewee,
models, services or views, so that it can be tested and reused on its own.
"""
