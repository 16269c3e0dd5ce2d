"""`python -m providers.table` prints the README's model and parameter table."""

from providers.docs import parameters_table_markdown

if __name__ == "__main__":
    print(parameters_table_markdown(), end="")
