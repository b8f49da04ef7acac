"""Rich renderables built from store rows: metric tables, heatmaps, stage descriptions."""
