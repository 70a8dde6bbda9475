package main

import "time"

func main() {
	// region loop
	for {
		if done() {
			break
		}
		time.Sleep(time.Second)
	}
	// endregion loop
}

func done() bool { return true }
