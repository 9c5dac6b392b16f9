"""`python -m modern.migrate_checkpoint`: a legacy TF1 checkpoint -> a .keras model.

The command keeps the name users know; its code needs both ports, so it
lives in migration/migrate_checkpoint.py (modern never imports legacy).
"""

if __name__ == "__main__":
  import runpy  # pylint: disable=g-import-not-at-top
  runpy.run_module("migration.migrate_checkpoint", run_name="__main__",
                   alter_sys=True)
