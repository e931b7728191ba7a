"""Integrations with web frameworks: ``roadie.contrib.django``, ``.flask``, ``.fastapi``.

Each imports its framework; roadie's core never imports anything here.
"""
