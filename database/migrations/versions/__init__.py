"""One file per revision; see DEVELOPERS.md, "Adding or changing a table"."""
