"""Storage: the schema, its migrations, one repository per table family, and Store."""
