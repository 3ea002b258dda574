from reanalyzer.cli import main

raise SystemExit(main())
