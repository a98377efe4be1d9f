from distkernel.cli import main

main()
