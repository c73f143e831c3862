from openlam.cli.main import main

main()
