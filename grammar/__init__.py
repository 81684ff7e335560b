"""Dockerfile text -> typed instructions. Depends on nothing else of pybuild's.

Kept empty on purpose: importing `grammar.errors` must not load lark.
"""
