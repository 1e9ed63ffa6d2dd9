package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/every-channel/ec-node/pkg/moq"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fp, err := moq.FetchFingerprint(ctx, "http://127.0.0.1:14443")
	if err != nil {
		panic(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, v := range []string{"moq-lite-05", "moq-lite-04", "moq-lite-03"} {
		s, err := moq.Dial(ctx, "https://127.0.0.1:14443/anon", moq.DialOptions{TLS: moq.TLSOptions{Fingerprint: fp}, Versions: []string{v}, Logger: log})
		if err != nil {
			fmt.Println(v, "dial", err)
			continue
		}
		a, err := s.Announced(ctx, "")
		if err != nil {
			fmt.Println("announced", err)
			continue
		}
		ann, err := a.Next(ctx)
		fmt.Println(v, "announce", ann, err)
		sub, err := s.Subscribe(ctx, "bbb.hang", "catalog.json")
		if err != nil {
			fmt.Println("sub", err)
			continue
		}
		g, err := sub.NextGroup(ctx)
		if err != nil {
			fmt.Println("group", err)
			continue
		}
		f, err := g.NextFrame()
		if err != nil {
			fmt.Println("frame", err)
			continue
		}
		b, _ := io.ReadAll(f.Body)
		fmt.Println(v, "catalog group", g.Sequence(), "ts", f.Timestamp, f.Timescale, string(b[:min(len(b), 400)]))
		_, err = s.Subscribe(ctx, "bbb.hang", "nope")
		fmt.Println(v, "missing track:", err)
		_, err = s.Subscribe(ctx, "nobroadcast", "catalog.json")
		fmt.Println(v, "missing broadcast:", err)
		s.Close()
		fmt.Println(v, "closed, err", s.Err())
	}
}
