# DL_HW_05week.py - MNIST MLP with dropout and Adam (TensorFlow 1.x)
#
# A reconstruction: the homework's source is lost. It is written from the
# homework report (network, optimizer settings, printed lines) and the
# project's reconstruction study (the initializer, zero biases, dropout
# after all four layers); see docs/original-scripts.md.
import tensorflow as tf
from tensorflow.examples.tutorials.mnist import input_data

mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)

training_epochs = 15
batch_size = 100

X = tf.placeholder(tf.float32, [None, 784])
Y = tf.placeholder(tf.float32, [None, 10])
keep_prob = tf.placeholder(tf.float32)

# 784 -> 256 -> 128 -> 256 -> 10, dropout after every layer
W1 = tf.Variable(tf.random_uniform([784, 256], -1., 1.))
b1 = tf.Variable(tf.zeros([256]))
L1 = tf.nn.sigmoid(tf.matmul(X, W1) + b1)
L1 = tf.nn.dropout(L1, keep_prob=keep_prob)

W2 = tf.Variable(tf.random_uniform([256, 128], -1., 1.))
b2 = tf.Variable(tf.zeros([128]))
L2 = tf.nn.sigmoid(tf.matmul(L1, W2) + b2)
L2 = tf.nn.dropout(L2, keep_prob=keep_prob)

W3 = tf.Variable(tf.random_uniform([128, 256], -1., 1.))
b3 = tf.Variable(tf.zeros([256]))
L3 = tf.nn.sigmoid(tf.matmul(L2, W3) + b3)
L3 = tf.nn.dropout(L3, keep_prob=keep_prob)

W4 = tf.Variable(tf.random_uniform([256, 10], -1., 1.))
b4 = tf.Variable(tf.zeros([10]))
model = tf.matmul(L3, W4) + b4
model = tf.nn.dropout(model, keep_prob=keep_prob)

cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=model, labels=Y))
optimizer = tf.train.AdamOptimizer(learning_rate=0.9, beta1=0.6, beta2=0.8,
                                   epsilon=0.1).minimize(cost)

sess = tf.Session()
sess.run(tf.global_variables_initializer())

for epoch in range(training_epochs):
    avg_cost = 0
    total_batch = int(mnist.train.num_examples / batch_size)

    for i in range(total_batch):
        batch_xs, batch_ys = mnist.train.next_batch(batch_size)
        feed_dict = {X: batch_xs, Y: batch_ys, keep_prob: 0.7}
        c, _ = sess.run([cost, optimizer], feed_dict=feed_dict)
        avg_cost += c / total_batch

    print('Epoch:', '%04d' % (epoch + 1), 'cost =', '{:.9f}'.format(avg_cost))

correct_prediction = tf.equal(tf.argmax(model, 1), tf.argmax(Y, 1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
print('Accuracy:', sess.run(accuracy, feed_dict={X: mnist.test.images,
                                                 Y: mnist.test.labels,
                                                 keep_prob: 1.0}))
