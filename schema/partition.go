package schema

import "strconv"

// maxPartitionDigits bounds the partition token, so that a long run of digits is not read as a
// partition number that overflows.
const maxPartitionDigits = 9

// SplitPartition splits a subject as a partitioned stream stores it,
// <partition>.<prefix>.<kind>.<key>, into the partition number and the subject the producer
// published. The stream's subject transform ({{partition(n,...)}} in front of the published
// subject) adds the token; the rest parses with ParseSubject. ok is false when the first token is
// not a partition number, and published is then the subject unchanged.
func SplitPartition(subject string) (partition int, published string, ok bool) {
	end := 0
	for end < len(subject) && subject[end] >= '0' && subject[end] <= '9' {
		end++
	}
	if end == 0 || end > maxPartitionDigits || end == len(subject) || subject[end] != '.' {
		return 0, subject, false
	}
	n, err := strconv.Atoi(subject[:end])
	if err != nil {
		return 0, subject, false
	}
	return n, subject[end+1:], true
}
