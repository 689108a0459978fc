// Command testreport reads `go test -json` output and prints what a person
// needs from a long run: each package's result, the whole output of every
// failed test, every skipped test with its reason, and a closing line
// "tests: N passed, N failed, N skipped". It exits 1 when a test failed or
// was skipped: the suite runs real services, so a skip means one did not run.
//
//	go test -json ./... | go run ./scripts/testreport
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type testEvent struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type key struct{ pkg, test string }

func main() {
	in := io.Reader(os.Stdin)
	if len(os.Args) > 1 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}

	output := map[key][]string{}
	result := map[key]string{}
	var pkgLines []string

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		var ev testEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// Not JSON: build errors and the like; show them as they are.
			fmt.Println(sc.Text())
			continue
		}
		k := key{ev.Package, ev.Test}
		switch ev.Action {
		case "output":
			output[k] = append(output[k], ev.Output)
		case "pass", "fail", "skip":
			result[k] = ev.Action
			if ev.Test == "" {
				pkgLines = append(pkgLines, fmt.Sprintf("%-4s %s %.1fs", strings.ToUpper(ev.Action), ev.Package, ev.Elapsed))
			}
		}
	}

	var passed, failed, skipped int
	var failedKeys, skippedKeys []key
	for k, r := range result {
		if k.test == "" {
			if r == "fail" {
				failedKeys = append(failedKeys, k) // build failure or a crash outside a test
			}
			continue
		}
		switch r {
		case "pass":
			passed++
		case "fail":
			failed++
			failedKeys = append(failedKeys, k)
		case "skip":
			skipped++
			skippedKeys = append(skippedKeys, k)
		}
	}
	sortKeys(failedKeys)
	sortKeys(skippedKeys)

	for _, l := range pkgLines {
		fmt.Println(l)
	}
	for _, k := range failedKeys {
		fmt.Printf("\n===== FAILED %s %s\n", k.pkg, k.test)
		lines := output[k]
		if len(lines) > 300 {
			fmt.Printf("(first %d lines cut)\n", len(lines)-300)
			lines = lines[len(lines)-300:]
		}
		fmt.Print(strings.Join(lines, ""))
	}
	for _, k := range skippedKeys {
		fmt.Printf("\n===== SKIPPED %s %s\n%s", k.pkg, k.test, strings.Join(output[k], ""))
	}

	fmt.Printf("\ntests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if len(failedKeys) > 0 || skipped > 0 {
		os.Exit(1)
	}
}

func sortKeys(ks []key) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].pkg != ks[j].pkg {
			return ks[i].pkg < ks[j].pkg
		}
		return ks[i].test < ks[j].test
	})
}
