"""The GitHub Action's steps (action.yml at the repository root): validate, plan, apply with redbeat-apply."""
