"""The report stage: figures by report category, tables, the model card, the HTML pages."""
