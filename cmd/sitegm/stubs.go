package main

func cmdRun(args []string) int  { return 0 }
func cmdDemo(args []string) int { return 0 }
