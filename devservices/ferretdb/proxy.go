package main

// A wire-protocol proxy that runs write commands one at a time.
//
// FerretDB v1 implements update, findAndModify and delete as "query, then write the new
// document back by _id" with nothing held in between, so two concurrent writes to one
// document lose updates: 100 concurrent {$inc: {n: 1}} leave n at about 5, and a conditional
// find_one_and_update ("claim the task if still accepted") can be won by several callers.
// MongoDB makes every single-document write atomic, and the service relies on that. The proxy
// restores it: clients connect here, each client connection gets its own connection to
// FerretDB, and a write command holds a global lock from the moment it is forwarded until its
// reply has come back. Reads are not locked.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
)

const (
	opMsg          = 2013
	headerLen      = 16
	maxMsgLen      = 48_000_000 + headerLen // FerretDB's maxMessageSizeBytes plus slack
	flagMoreToCome = 1 << 1
)

// writeCommands are lower-cased command names that modify data or metadata.
var writeCommands = map[string]bool{
	"insert": true, "update": true, "delete": true, "findandmodify": true,
	"create": true, "createindexes": true, "drop": true, "dropdatabase": true,
	"dropindexes": true, "renamecollection": true, "collmod": true,
}

type proxy struct {
	backend string
	logger  *slog.Logger
	writeMu sync.Mutex
}

func (p *proxy) serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go p.handle(conn)
	}
}

func (p *proxy) handle(client net.Conn) {
	defer client.Close()

	server, err := net.Dial("tcp", p.backend)
	if err != nil {
		p.logger.Error("proxy: cannot reach FerretDB", "err", err)
		return
	}
	defer server.Close()

	cr := bufio.NewReader(client)
	sr := bufio.NewReader(server)

	for {
		req, err := readMessage(cr)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.logger.Debug("proxy: client read", "err", err)
			}
			return
		}
		if err = p.roundTrip(req, server, sr, client); err != nil {
			p.logger.Debug("proxy: round trip", "err", err)
			return
		}
	}
}

// roundTrip forwards one request and every reply it gets, holding the write lock for writes.
func (p *proxy) roundTrip(req []byte, server net.Conn, sr *bufio.Reader, client net.Conn) error {
	if isWrite(req) {
		p.writeMu.Lock()
		defer p.writeMu.Unlock()
	}

	if _, err := server.Write(req); err != nil {
		return err
	}
	if moreToCome(req) { // fire-and-forget (w=0): the server sends no reply
		return nil
	}

	for {
		resp, err := readMessage(sr)
		if err != nil {
			return err
		}
		if _, err = client.Write(resp); err != nil {
			return err
		}
		if !moreToCome(resp) { // exhaust replies keep coming while the flag is set
			return nil
		}
	}
}

func readMessage(r *bufio.Reader) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(lenBuf[:])))
	if n < headerLen || n > maxMsgLen {
		return nil, fmt.Errorf("bad message length %d", n)
	}
	msg := make([]byte, n)
	copy(msg, lenBuf[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

func moreToCome(msg []byte) bool {
	return opCode(msg) == opMsg && len(msg) >= headerLen+4 &&
		binary.LittleEndian.Uint32(msg[headerLen:headerLen+4])&flagMoreToCome != 0
}

// isWrite reports whether msg is an OP_MSG whose command (the first key of its body section)
// is a write. Anything it cannot parse counts as a write, which is merely slower.
func isWrite(msg []byte) bool {
	if opCode(msg) != opMsg {
		return false // legacy OP_QUERY is only used for the initial handshake
	}
	name, ok := commandName(msg)
	return !ok || writeCommands[strings.ToLower(name)]
}

func commandName(msg []byte) (string, bool) {
	i := headerLen + 4 // skip header and flagBits
	for i < len(msg) {
		kind := msg[i]
		i++
		if i+4 > len(msg) {
			return "", false
		}
		size := int(int32(binary.LittleEndian.Uint32(msg[i : i+4])))
		if size < 4 || i+size > len(msg) {
			return "", false
		}
		if kind == 0 { // body: a BSON document whose first element names the command
			doc := msg[i : i+size]
			if len(doc) < 6 { // length, element type, at least a NUL name terminator
				return "", false
			}
			rest := doc[5:]
			end := strings.IndexByte(string(rest), 0)
			if end < 0 {
				return "", false
			}
			return string(rest[:end]), true
		}
		i += size // kind 1: document sequence, its size covers itself
	}
	return "", false
}
