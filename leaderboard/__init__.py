"""Leaderboard: measured results (checkpoint metrics.json) beside published anchors. pandas + plotly, no gradio."""
