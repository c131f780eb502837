QwenVKCommand.main()
