// Command hostile is a misbehaving devp2p peer for poactl's fault suite, made of
// go-ethereum v1.13.15's own packages (rlpx, eth, clique, types): it dials a node,
// completes the RLPx, devp2p and eth/68 handshakes (echoing the node's own status), asks
// for the node's head header and announces one block it built on that head, sealed
//
//   - stranger: by a key that is not a signer,
//   - recent:   by -key, a signer that sealed the head (out of turn too often),
//   - future:   with a timestamp an hour ahead (by a key that is not a signer).
//
// It prints, as one JSON line, the block it sent and whether the node dropped it.
package main

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/clique"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/protocols/eth"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/rlpx"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"
)

const (
	handshakeMsg = 0x00 // devp2p's base protocol, p2p/peer.go
	discMsg      = 0x01
	pingMsg      = 0x02
	pongMsg      = 0x03
	ethOffset    = 16 // the eth protocol's codes follow the base protocol's 16
	timeout      = 5 * time.Second
)

type hello struct { // p2p/peer.go's protoHandshake
	Version    uint64
	Name       string
	Caps       []p2p.Cap
	ListenPort uint64
	ID         []byte
	Rest       []rlp.RawValue `rlp:"tail"`
}

type report struct {
	Kind    string `json:"kind"`
	Hash    string `json:"hash"`
	Number  uint64 `json:"number"`
	Signer  string `json:"signer"`
	Dropped bool   `json:"dropped"`
	Reason  string `json:"reason"`
}

func main() {
	url := flag.String("enode", "", "the node to dial (enode://id@ip:port)")
	kind := flag.String("kind", "stranger", "stranger | recent | future")
	keyHex := flag.String("key", "", "hex key to seal with (recent: the head's signer)")
	period := flag.Uint64("period", 2, "the chain's block period, seconds")
	watch := flag.Duration("watch", 15*time.Second, "how long to wait for the node to drop us")
	flag.Parse()
	r, err := run(*url, *kind, *keyHex, *period, *watch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func run(url, kind, keyHex string, period uint64, watch time.Duration) (*report, error) {
	node, err := enode.ParseV4(url)
	if err != nil {
		return nil, err
	}
	sealer, err := crypto.GenerateKey()
	if keyHex != "" {
		sealer, err = crypto.HexToECDSA(keyHex)
	}
	if err != nil {
		return nil, err
	}
	conn, status, err := dial(node)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	head, err := headHeader(conn, status.Head)
	if err != nil {
		return nil, err
	}
	block := build(head, kind, sealer, period)
	td := new(big.Int).Add(status.TD, block.Difficulty())
	if err := write(conn, ethOffset+eth.NewBlockMsg, &eth.NewBlockPacket{Block: block, TD: td}); err != nil {
		return nil, err
	}
	r := &report{Kind: kind, Hash: block.Hash().Hex(), Number: block.NumberU64(),
		Signer: crypto.PubkeyToAddress(sealer.PublicKey).Hex()}
	r.Dropped, r.Reason = dropped(conn, watch)
	return r, nil
}

func dial(node *enode.Node) (*rlpx.Conn, *eth.StatusPacket, error) {
	fd, err := net.DialTimeout("tcp", fmt.Sprintf("%v:%d", node.IP(), node.TCP()), timeout)
	if err != nil {
		return nil, nil, err
	}
	conn := rlpx.NewConn(fd, node.Pubkey())
	ours, _ := crypto.GenerateKey()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Handshake(ours); err != nil {
		return nil, nil, fmt.Errorf("rlpx handshake: %w", err)
	}
	me := &hello{Version: 5, Name: "hostile", Caps: []p2p.Cap{{Name: "eth", Version: 68}},
		ID: crypto.FromECDSAPub(&ours.PublicKey)[1:]}
	if err := write(conn, handshakeMsg, me); err != nil {
		return nil, nil, err
	}
	var theirs hello
	if err := expect(conn, handshakeMsg, &theirs); err != nil {
		return nil, nil, fmt.Errorf("devp2p hello: %w", err)
	}
	conn.SetSnappy(theirs.Version >= 5)
	status := new(eth.StatusPacket)
	if err := expect(conn, ethOffset+eth.StatusMsg, status); err != nil {
		return nil, nil, fmt.Errorf("eth status: %w", err)
	}
	if err := write(conn, ethOffset+eth.StatusMsg, status); err != nil { // its own, echoed
		return nil, nil, err
	}
	return conn, status, nil
}

func headHeader(conn *rlpx.Conn, head common.Hash) (*types.Header, error) {
	request := &eth.GetBlockHeadersPacket{RequestId: 7, GetBlockHeadersRequest: &eth.GetBlockHeadersRequest{
		Origin: eth.HashOrNumber{Hash: head}, Amount: 1}}
	if err := write(conn, ethOffset+eth.GetBlockHeadersMsg, request); err != nil {
		return nil, err
	}
	answer := new(eth.BlockHeadersPacket)
	if err := expect(conn, ethOffset+eth.BlockHeadersMsg, answer); err != nil {
		return nil, fmt.Errorf("head header: %w", err)
	}
	if len(answer.BlockHeadersRequest) != 1 {
		return nil, errors.New("the node sent no head header")
	}
	return answer.BlockHeadersRequest[0], nil
}

// build makes an empty block on `parent`, sealed by `key` the way Clique seals.
func build(parent *types.Header, kind string, key *ecdsa.PrivateKey, period uint64) *types.Block {
	when := parent.Time + period
	if kind == "future" {
		when = uint64(time.Now().Add(time.Hour).Unix())
	} else {
		for uint64(time.Now().Unix()) < when { // a block from the future is another case
			time.Sleep(100 * time.Millisecond)
		}
	}
	london := &params.ChainConfig{LondonBlock: common.Big0}
	header := &types.Header{
		ParentHash: parent.Hash(), UncleHash: types.EmptyUncleHash, Root: parent.Root,
		TxHash: types.EmptyTxsHash, ReceiptHash: types.EmptyReceiptsHash,
		Difficulty: big.NewInt(2), Number: new(big.Int).Add(parent.Number, common.Big1),
		GasLimit: parent.GasLimit, Time: when, Extra: make([]byte, 32+crypto.SignatureLength),
		BaseFee: eip1559.CalcBaseFee(london, parent),
	}
	if kind == "recent" {
		header.Difficulty = big.NewInt(1)
	}
	seal, err := crypto.Sign(clique.SealHash(header).Bytes(), key)
	if err != nil {
		panic(err)
	}
	copy(header.Extra[32:], seal)
	return types.NewBlockWithHeader(header)
}

// dropped reads until the node disconnects us (true, its reason) or `watch` passes.
func dropped(conn *rlpx.Conn, watch time.Duration) (bool, string) {
	deadline := time.Now().Add(watch)
	for time.Now().Before(deadline) {
		conn.SetReadDeadline(deadline)
		code, data, _, err := conn.Read()
		if err != nil {
			var timeoutErr net.Error
			if errors.As(err, &timeoutErr) && timeoutErr.Timeout() {
				return false, ""
			}
			return true, err.Error()
		}
		switch code {
		case discMsg:
			var reason []p2p.DiscReason
			rlp.DecodeBytes(data, &reason)
			return true, fmt.Sprint(reason)
		case pingMsg:
			write(conn, pongMsg, []any{})
		}
	}
	return false, ""
}

func write(conn *rlpx.Conn, code uint64, msg any) error {
	payload, err := rlp.EncodeToBytes(msg)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err = conn.Write(code, payload)
	return err
}

// expect reads until a message with `code` (answering pings, skipping the rest).
func expect(conn *rlpx.Conn, code uint64, into any) error {
	conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		got, data, _, err := conn.Read()
		if err != nil {
			return err
		}
		switch got {
		case code:
			return rlp.DecodeBytes(data, into)
		case discMsg:
			var reason []p2p.DiscReason
			rlp.DecodeBytes(data, &reason)
			return fmt.Errorf("disconnected: %v", reason)
		case pingMsg:
			write(conn, pongMsg, []any{})
		}
	}
}
