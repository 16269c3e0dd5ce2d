from consumers.admin.cli import main

main()
