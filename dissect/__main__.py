from dissect.cli import main

main()
