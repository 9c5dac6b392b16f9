"""`python -m legacy.migrate_checkpoint`: a modern run -> a legacy TF1 checkpoint.

The mirror of modern.migrate_checkpoint; its code needs both ports, so it
lives in migration/migrate_back.py (legacy never imports modern).
"""

if __name__ == "__main__":
  import runpy  # pylint: disable=g-import-not-at-top
  runpy.run_module("migration.migrate_back", run_name="__main__",
                   alter_sys=True)
