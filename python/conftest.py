# pytest puts this folder on sys.path (it holds no __init__.py), so `pytest python/tests` imports
# pacheck_pytest in place, without installing it.
