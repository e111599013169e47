"""Build and deploy helpers: source bundles, prerequisite checks, the post-deploy smoke test.

Run from the repository root (``./deploy.sh build|deploy``); never imported by the functions and never
part of a bundle.
"""
