// Package doctest extracts the shell examples of the project's Markdown
// documentation, so that a test can run them in order, as a user pasting
// them would, against binaries built from the tree.
//
// A fenced block whose info string is sh, bash or shell is an example. In
// README.md every example runs unless the line before its fence is
//
//	<!-- doctest: skip (why it cannot run in the test) -->
//
// (the reason is required). Other files opt in block by block with
//
//	<!-- doctest -->
//
// on the line before the fence.
package doctest

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Block is one fenced shell example.
type Block struct {
	// File and Line locate the opening fence (1-based).
	File string
	Line int
	// Text is the block's content, each line ending in "\n".
	Text string
	// Marked is true when the block is preceded by <!-- doctest -->.
	Marked bool
	// Skip is true when the block is preceded by a skip marker;
	// SkipReason says why.
	Skip       bool
	SkipReason string
}

// Runs reports whether b runs in the test: every unskipped block of a file
// that runs by default (README.md), otherwise only marked blocks.
func (b Block) Runs(allByDefault bool) bool {
	if b.Skip {
		return false
	}
	return allByDefault || b.Marked
}

var (
	markerRE = regexp.MustCompile(`^<!--\s*doctest\s*(?::\s*(.*?))?\s*-->$`)
	skipRE   = regexp.MustCompile(`^skip\s*\((.+)\)$`)
)

// shellLangs are the fence info strings treated as shell examples.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true}

// Extract returns the shell blocks of the Markdown document md, named file
// in errors. A marker that is malformed (unknown directive, skip without a
// reason), not followed by a shell block, or a fence left open is an error
// naming the line.
func Extract(file string, md []byte) ([]Block, error) {
	var blocks []Block
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var (
		lineNo      int
		inFence     bool
		fence       string // the opening fence's backticks or tildes
		cur         *Block // the shell block being read, nil in other fences
		pending     *Block // a marker waiting for its block
		pendingLine int
	)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if inFence {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				inFence = false
				if cur != nil {
					blocks = append(blocks, *cur)
					cur = nil
				}
				continue
			}
			if cur != nil {
				cur.Text += line + "\n"
			}
			continue
		}
		if m := markerRE.FindStringSubmatch(trimmed); m != nil {
			if pending != nil {
				return nil, fmt.Errorf("%s:%d: doctest marker not followed by a shell block", file, pendingLine)
			}
			b := &Block{File: file}
			switch d := m[1]; {
			case d == "":
				b.Marked = true
			case skipRE.MatchString(d):
				b.Skip, b.SkipReason = true, strings.TrimSpace(skipRE.FindStringSubmatch(d)[1])
			default:
				return nil, fmt.Errorf("%s:%d: doctest marker %q: want <!-- doctest --> or <!-- doctest: skip (reason) -->", file, lineNo, trimmed)
			}
			pending, pendingLine = b, lineNo
			continue
		}
		if f := fenceOf(trimmed); f != "" {
			inFence, fence = true, f
			lang := strings.TrimSpace(strings.TrimLeft(trimmed, f[:1]))
			if i := strings.IndexAny(lang, " \t{"); i >= 0 {
				lang = lang[:i]
			}
			if shellLangs[lang] {
				b := Block{File: file}
				if pending != nil {
					b = *pending
				}
				b.Line = lineNo
				cur = &b
			} else if pending != nil {
				return nil, fmt.Errorf("%s:%d: doctest marker applies to a %q block at line %d, want sh or bash", file, pendingLine, lang, lineNo)
			}
			pending = nil
			continue
		}
		if pending != nil && trimmed != "" {
			return nil, fmt.Errorf("%s:%d: doctest marker not followed by a shell block", file, pendingLine)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if inFence {
		return nil, fmt.Errorf("%s:%d: code fence %s never closed", file, lineNo, fence)
	}
	if pending != nil {
		return nil, fmt.Errorf("%s:%d: doctest marker not followed by a shell block", file, pendingLine)
	}
	return blocks, nil
}

// fenceOf returns the fence (three or more backticks or tildes) that line
// opens, or "".
func fenceOf(line string) string {
	for _, c := range []string{"`", "~"} {
		n := len(line) - len(strings.TrimLeft(line, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// Script joins the blocks that run into one bash script that stops at the
// first failing command and says on stderr which block it is in.
func Script(blocks []Block, allByDefault bool) string {
	var sb strings.Builder
	sb.WriteString("set -eo pipefail\n")
	for _, b := range blocks {
		if !b.Runs(allByDefault) {
			continue
		}
		fmt.Fprintf(&sb, "echo '### doctest: %s:%d' >&2\n", b.File, b.Line)
		sb.WriteString(b.Text)
	}
	return sb.String()
}
