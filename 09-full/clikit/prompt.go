//go:build linux

package clikit

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Confirm asks as the docker CLI's prune verbs do, and is true only for
// y or yes.
func (a *App) Confirm(warning string) bool {
	fmt.Fprintf(a.Stdout, "%s\nAre you sure you want to continue? [y/N] ", warning)
	answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}

// Section prints a prune's list under its title (Deleted Containers:,
// Deleted Volumes:…), nothing when the list is empty.
func (a *App) Section(title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintln(a.Stdout, title)
	for _, it := range items {
		fmt.Fprintln(a.Stdout, it)
	}
	fmt.Fprintln(a.Stdout)
}
