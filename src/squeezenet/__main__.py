from squeezenet.cli import main

raise SystemExit(main())
