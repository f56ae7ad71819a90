"""python -m bench: run the scenarios and print the table."""

from bench.main import main

main()
