from restorer.cli import main

raise SystemExit(main())
