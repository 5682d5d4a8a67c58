"""Registration authority: every rule of who may do what and when.

Services take plain values and return results or raise `DomainError` carrying a message id
that the view translates. They never read the Flask request or session.
"""
