#!/usr/bin/env python
"""Django's command-line utility. With neither DATABASE_URL nor REDIS_URL set, it uses the embedded services."""

import os
import sys


def main() -> None:
    """Run a management command (`python manage.py help` lists them)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from config import embedded

    embedded.export_environment()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
